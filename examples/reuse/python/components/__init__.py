"""The platform team's own components: nothing to do with aifinops' `components` package,
which is installed as `aifinops.components` and so never collides with this one."""
