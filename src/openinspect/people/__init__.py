"""People: GitHub sign-in (web and device flows), admission by allowlists, roles, and the policy
on which repos a person may start sessions on. ``service.People`` bundles them for the app."""
