"""The webhook face: an HTTPS server answering AdmissionReviews with the admission core."""
