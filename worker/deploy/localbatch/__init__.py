"""``python -m worker local-batch``: one Batch node on this machine, for a job's documents.

``documents`` reads and checks the pool, job and tasks; ``node`` lays the node out and
extracts the packages; ``starttask`` runs the start task; ``scheduler`` runs the tasks on
the slots; ``process`` is one run of a command line; ``emulators`` is ``--emulators``;
``report`` the table and JSON report; ``cli`` the command. A local test runner, never a
scheduler for production work.
"""
