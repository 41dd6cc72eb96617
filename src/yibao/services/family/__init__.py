"""Family mutual aid (家庭共济, issue 16): bindings, consent, the relative's
order of payers, contributions paid from a holder's account, and the
helpers the settlement and the records use."""
