"""The only part of tfvae that touches Keras', TensorFlow's or TensorFlow Probability's private state.

Every such access is marked `PRIVATE:` with what it works around, the versions it was checked on, and what happens
where it is absent; each has a fallback that stays correct. `tests/_keras/test_private_access.py` checks that no
module outside this package imports `keras.src` or sets a private attribute of a Keras object.
"""
