"""A password hasher for tests: PBKDF2 with one iteration.

The hash records its own iteration count, so a server subprocess running the
production hasher list (the browser tests' uvicorn) still verifies it.
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class OneRoundPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1
