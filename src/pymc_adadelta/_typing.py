"""Type aliases for pytensor objects.

pytensor's annotations give ``Variable`` and ``SharedVariable`` none of the tensor
attributes (``dtype``, ``ndim``, indexing) that the code relies on, so annotations use
these aliases; runtime checks still use the real classes.
"""

from typing import Any, TypeAlias

TensorLike: TypeAlias = Any
"""A pytensor tensor variable (symbolic, constant or shared)."""

SharedTensor: TypeAlias = Any
"""A pytensor shared tensor variable."""
