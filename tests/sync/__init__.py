"""Tests of the sync connector half: records, Xero connector, rate limiter, sandbox."""
