"""HL7 FHIR R4 (4.0.1) at ``/fhir/R4``, JSON only (issue 16): parse the
request (every resource received through ``fhir.resources.R4B``),
authenticate the bearer token (a use case), call one use case, render the
answer as a resource built with the same models. Every refusal is an
OperationOutcome naming the element; nothing here commits, audits or
decides."""

from yibao.channels.fhir.routes import router

__all__ = ["router"]
