"""The public directory (issue 16): designated institutions and the medical
catalogue, looked up by anyone without logging in, kept by staff with an
audited change history, and a catalogue file imported row by row."""
