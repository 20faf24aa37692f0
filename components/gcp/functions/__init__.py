"""Code the GCP components deploy as Cloud Functions. Each module is self-contained (standard
library only, plus the decision module it ships with) and is uploaded as the function's
`main.py`."""
