"""The controllers that turn Services into endpoints: endpointslice (slices from the pods a
Service selects), endpoints (the Endpoints object of the same), endpointslice_mirroring (slices
from Endpoints of selector-less Services), with service_pods (the Service/pod bookkeeping the
first two share) and slice_writer (reconciling a Service's slices with the ones wanted)."""
