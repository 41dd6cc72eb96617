"""Channels: parse, authenticate, call a service, render. No business rules here."""
