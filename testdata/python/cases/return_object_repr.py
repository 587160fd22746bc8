# Anything else is returned as its repr().
# status: success
# return: "<Thing 7>"
class Thing:
    def __repr__(self):
        return "<Thing 7>"


Thing()
