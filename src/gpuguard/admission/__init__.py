"""Admission: the verdict for one AdmissionReview (allow, deny, warn, patch), from the engine and the rules."""
