"""Leaderboard, recommendation and the pull-request report."""
