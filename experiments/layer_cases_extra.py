"""Imports the case modules of the other layer families so they register themselves.

Add one line here per file of cases (``experiments/layer_cases_<family>.py``).
"""
