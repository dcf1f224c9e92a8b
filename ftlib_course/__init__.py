"""Course tooling around nbgrader: the shared configuration, learner-side validation, and
feedback that never shows hidden tests. The library itself is `ftlib`; nothing here is needed
to use it."""

import sys

# nbformat validates notebooks with jsonschema, which imports `rfc3987_syntax` where Jupyter's
# format extras installed it; that module builds an IRI grammar on import, 1.2 s in every
# grading process, for a string format no notebook schema uses. Without it, jsonschema leaves
# that one format unchecked.
sys.modules.setdefault("rfc3987_syntax", None)
