"""Loopback fakes of the platforms Bangdai talks to (only what lives on someone else's servers)."""
