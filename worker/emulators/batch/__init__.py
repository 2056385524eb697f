"""A local Azure Batch service: REST data plane, account plane, pools' nodes and autoscale."""
