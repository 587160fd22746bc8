# Request env variables are visible.
# env: {"GREETING": "hi", "EMPTY": ""}
# status: success
# return: ["hi", ""]
import os
[os.environ["GREETING"], os.environ["EMPTY"]]
