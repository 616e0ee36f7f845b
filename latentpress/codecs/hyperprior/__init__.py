"""The entropy model glc and relic share, and the machinery around it.

A hyperprior with a four-part spatial context (:mod:`.prior`), its networks evaluated
in integer arithmetic on both sides (:mod:`.exact`), the fixed tables of steps,
spreads and counts (:mod:`.tables`), the range coder of a code under it
(:mod:`.coder`), the model file (:mod:`.model_file`), the checked training latents
(:mod:`.latents`) and the training helpers (:mod:`.training`). glc and relic each
depend on this package, never on each other.
"""

FORMAT_VERSION = 1
"""Version of the bytes this package defines: the model file's layout, the tables and
the exact arithmetic. Bumped when any of them would code or read a byte differently
(``tests/golden`` holds streams of each version that must keep decoding)."""
