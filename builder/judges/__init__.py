"""Judges: they score an edit against its instruction, VIEScore-style, for `judge_edit` and the
verify-and-re-plan loop of `lego_edit`."""
