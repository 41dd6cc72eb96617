"""Closing an account: emigration, transfer out, death (seed 000, part three,
item 4); the payout, and a relation transferred in from another area."""
