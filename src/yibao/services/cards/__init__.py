"""Cards along their lifecycle, the four ways to apply (seed 000, part two),
employers' batches, and the electronic voucher that stands in for a card."""
