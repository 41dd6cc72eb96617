"""Settlement at designated institutions (the HIS interface's business):
visits, fee details, the benefit split, settlement and its cancellation, the
cash visit after an equipment failure, reconciliation; the benefit policy."""
