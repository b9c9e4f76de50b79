"""Error type of the ONNX export and codecs."""


class OnnxFormatError(ValueError):
    """A weight, an encoded array or an ONNX graph does not have the form we need.

    The message always names the offending value and what is allowed.
    """
