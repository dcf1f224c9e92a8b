"""Hostile submissions, built from a lesson's release at test time, and how to check the damage."""
