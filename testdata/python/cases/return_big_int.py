# Integers keep every digit, beyond float64 precision.
# status: success
# return: 1267650600228229401496703205376
2 ** 100
