# A trailing expression may span several lines.
# status: success
# return: {"a": 1, "b": [2, 3]}
{
    "a": 1,
    "b": [
        2,
        3,
    ],
}
