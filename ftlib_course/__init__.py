"""Course tooling around nbgrader: the shared configuration, learner-side validation, and
feedback that never shows hidden tests. The library itself is `ftlib`; nothing here is needed
to use it."""
