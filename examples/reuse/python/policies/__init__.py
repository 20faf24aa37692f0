"""The platform team's own rules, checked before anything is created (not aifinops' policy
pack, which is installed as `aifinops.policies`)."""
