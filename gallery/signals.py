"""Announce gallery events that other apps act on."""

from django.dispatch import Signal

# Sent inside the transaction that stores a photo, with photo=<Photo>.
# Receivers that start background work should wait for the commit.
photo_uploaded = Signal()
