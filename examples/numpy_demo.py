# A numpy computation inside the sandbox. The trailing expression is the
# cell's return value (see `pybox run --json`).
import numpy as np

rng = np.random.default_rng(42)
a = rng.standard_normal((500, 500))
eig = np.linalg.eigvalsh(a @ a.T)
print(f"numpy {np.__version__}: largest eigenvalue of A·Aᵀ = {eig[-1]:.2f}")
{"shape": a.shape, "trace": float(np.trace(a @ a.T)), "top3": eig[-3:].round(2)}
