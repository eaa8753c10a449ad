"""C source of `AdadeltaStep` for pytensor's C backend.

Kept apart from the Op so that the Op module stays readable. The code takes, for each
output, either the input itself (in-place form, contiguous input) or a fresh contiguous
copy, then runs one loop per parameter. Each statement mirrors one operation of
``pm.adadelta`` so that both round the same way.
"""

from __future__ import annotations

from pymc_adadelta.optim.step_counter import COUNTER_BASE

_OUTPUT_TEMPLATE = """
if ({inplace} && PyArray_IS_C_CONTIGUOUS({src})) {{
    Py_XDECREF({dst});
    {dst} = {src};
    Py_INCREF({dst});
}} else {{
    Py_XDECREF({dst});
    {dst} = (PyArrayObject*)PyArray_NewCopy({src}, NPY_CORDER);
    if (!{dst}) {{ {fail} }}
}}
"""

_PARAM_TEMPLATE = """
{{
    PyArrayObject* grad_c = PyArray_GETCONTIGUOUS({grad});
    if (!grad_c) {{ {fail} }}
    npy_intp size = PyArray_SIZE({param_out});
    if (PyArray_SIZE(grad_c) != size) {{
        PyErr_Format(PyExc_ValueError,
            "AdadeltaStep: gradient {index} has %ld elements, its parameter has %ld",
            (long)PyArray_SIZE(grad_c), (long)size);
        Py_DECREF(grad_c);
        {fail}
    }}
    if (offset + size > n_total) {{
        PyErr_Format(PyExc_ValueError,
            "AdadeltaStep: the parameters hold more elements than the accumulators (%ld)",
            (long)n_total);
        Py_DECREF(grad_c);
        {fail}
    }}
    const dtype_{accum} rho = *(dtype_{accum}*)PyArray_GETPTR2({hyper}, {index}, 0);
    const dtype_{accum} one_minus_rho = *(dtype_{accum}*)PyArray_GETPTR2({hyper}, {index}, 1);
    const dtype_{accum} eps = *(dtype_{accum}*)PyArray_GETPTR2({hyper}, {index}, 2);
    const dtype_{accum} lr = *(dtype_{accum}*)PyArray_GETPTR2({hyper}, {index}, 3);
    adadelta_kernel((const dtype_{accum}*)PyArray_DATA(grad_c),
                    (dtype_{accum}*)PyArray_DATA({param_out}),
                    accum_data + offset, accum_data + row + offset,
                    size, rho, one_minus_rho, eps, lr);
    offset += size;
    Py_DECREF(grad_c);
}}
"""


#: A small template function so that the compiler sees a tight loop over restrict
#: pointers and vectorizes it (inlined into the Op's big function it does not).
SUPPORT_CODE = """
// Raise pymc_adadelta.optim.op.HyperparameterError(column, value, count); returns -1.
static int adadelta_hyper_error(int column, double value, double high, double low)
{
    PyObject* module = PyImport_ImportModule("pymc_adadelta.optim.op");
    if (!module) return -1;
    PyObject* cls = PyObject_GetAttrString(module, "HyperparameterError");
    Py_DECREF(module);
    if (!cls) return -1;
    const long long count = (long long)high * COUNTER_BASE_VALUE + (long long)low;
    PyObject* error = PyObject_CallFunction(cls, "idL", column, value, count);
    Py_DECREF(cls);
    if (!error) return -1;
    PyErr_SetObject((PyObject*)Py_TYPE(error), error);
    Py_DECREF(error);
    return -1;
}

// The column of the first invalid hyperparameter of a row, or -1 when all are valid.
template <typename T>
static int adadelta_invalid_column(const T rho, const T eps, const T lr)
{
    if (!(rho >= 0 && rho < 1)) return 0;
    if (!(eps > 0 && std::isfinite(eps))) return 2;
    if (!(lr > 0 && std::isfinite(lr))) return 3;
    return -1;
}

template <typename T>
static void adadelta_kernel(const T* __restrict__ g, T* __restrict__ x, T* __restrict__ s,
                            T* __restrict__ u, npy_intp size, const T rho,
                            const T one_minus_rho, const T eps, const T lr)
{
    for (npy_intp j = 0; j < size; ++j) {
        const T gj = g[j];
        const T s_new = rho * s[j] + one_minus_rho * (gj * gj);
        s[j] = s_new;
        const T dx = gj * std::sqrt(u[j] + eps) / std::sqrt(s_new + eps);
        u[j] = rho * u[j] + one_minus_rho * (dx * dx);
        x[j] = x[j] - lr * dx;
    }
}
""".replace("COUNTER_BASE_VALUE", str(COUNTER_BASE))


def adadelta_step_c_code(
    n_params: int, inplace: bool, inputs: list[str], outputs: list[str], sub: dict
) -> str:
    """Return the C body of an `AdadeltaStep` node with ``n_params`` parameters."""
    accum, hyper = inputs[:2]
    params, grads = inputs[2 : 2 + n_params], inputs[2 + n_params :]
    accum_out, *params_out = outputs
    fail = sub["fail"]
    flag = int(inplace)
    parts = [
        _OUTPUT_TEMPLATE.format(inplace=flag, src=src, dst=dst, fail=fail)
        for src, dst in [(accum, accum_out), *zip(params, params_out, strict=True)]
    ]
    parts.append(
        f"""
const npy_intp row = PyArray_DIMS({accum_out})[1];
const npy_intp n_total = row - 1;  // the last column holds the step counter
npy_intp offset = 0;
dtype_{accum}* accum_data = (dtype_{accum}*)PyArray_DATA({accum_out});
if (PyArray_DIMS({accum_out})[0] != 2) {{
    PyErr_SetString(PyExc_ValueError, "AdadeltaStep: accum must have 2 rows");
    {fail}
}}
if (PyArray_DIMS({hyper})[0] != {n_params} || PyArray_DIMS({hyper})[1] != 4) {{
    PyErr_SetString(PyExc_ValueError, "AdadeltaStep: hyper must have one row of 4 per parameter");
    {fail}
}}
// Check every hyperparameter before changing anything (the outputs may be the inputs).
for (npy_intp i = 0; i < {n_params}; ++i) {{
    const dtype_{accum} values[4] = {{
        *(dtype_{accum}*)PyArray_GETPTR2({hyper}, i, 0),
        *(dtype_{accum}*)PyArray_GETPTR2({hyper}, i, 1),
        *(dtype_{accum}*)PyArray_GETPTR2({hyper}, i, 2),
        *(dtype_{accum}*)PyArray_GETPTR2({hyper}, i, 3)}};
    const int column = adadelta_invalid_column(values[0], values[2], values[3]);
    if (column >= 0) {{
        adadelta_hyper_error(column, (double)values[column], (double)accum_data[n_total],
                             (double)accum_data[row + n_total]);
        {fail}
    }}
}}
"""
    )
    parts.extend(
        _PARAM_TEMPLATE.format(
            index=i, grad=grad, param_out=param_out, hyper=hyper, accum=accum, fail=fail
        )
        for i, (grad, param_out) in enumerate(zip(grads, params_out, strict=True))
    )
    parts.append(
        f"""
if (offset != n_total) {{
    PyErr_Format(PyExc_ValueError,
        "AdadeltaStep: the parameters hold %ld elements but the accumulators hold %ld",
        (long)offset, (long)n_total);
    {fail}
}}
// The step counter: high in row 0, low in row 1 (see pymc_adadelta.optim.step_counter).
accum_data[row + n_total] += 1;
if (accum_data[row + n_total] >= {COUNTER_BASE}) {{
    accum_data[row + n_total] -= {COUNTER_BASE};
    accum_data[n_total] += 1;
}}
"""
    )
    return "{\n" + "\n".join(parts) + "\n}\n"
