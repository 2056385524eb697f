"""The deploy loop: ``deploy``, ``status``, ``logs``, ``results`` and ``rerun``, through the
Azure SDKs (azure-batch 15.x for the data plane, azure-mgmt-batch 19.x for the account plane,
azure-identity for sign-in), which need Python 3.9 or newer and the ``deploy`` extra.

Each command's module parses its options on any Python (``--help`` works on 3.8); the SDKs
are imported only when a command runs, after :func:`worker.deploy.cloud.sdk.require_sdk`
said they are there. Nodes never deploy: a running task never imports this subpackage.
"""
