"""The Builder: plans an edit as a workflow of brick calls and runs it (see the workflow issue)."""
