# Top-level await works, including in the trailing expression.
# status: success
# stdout: slept
# return: 42
import asyncio


async def answer():
    await asyncio.sleep(0.01)
    return 42

await asyncio.sleep(0)
print("slept")
await answer()
