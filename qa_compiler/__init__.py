"""Compile scene stores into DSR multiple-choice questions with procedural answers (numpy only)."""
