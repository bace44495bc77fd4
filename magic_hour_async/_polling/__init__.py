"""Polling: the scheduler that serves every wait, its policy, adaptive rate, tickets and timers."""
