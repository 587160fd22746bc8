# pandas works; to_dict() gives a JSON-able value.
# requires: pandas
# status: success
# stdout-contains: mean=2.0
# return: {"a": [1, 2, 3], "b": ["x", "y", "z"]}
import pandas as pd
df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
print(f"mean={df['a'].mean()}")
df.to_dict("list")
