"""The HL7 FHIR R4 interface's use cases (issue 16): the institution's
bearer token, and the reads, the eligibility check and the claims that the
FHIR channel (``channels/fhir``) maps to and from FHIR resources. Each
reaches the same rules the HIS reaches (``domain.use``,
``domain.settlement`` through ``services.settlement``)."""
