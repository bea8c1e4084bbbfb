export {
  PickleError,
  NdArray,
  NumpyDType,
  JOBLIB_ARRAY_WRAPPERS,
  SKLEARN_CLASSES,
  loadPickle,
  isInstance,
  isNdArray,
  isTuple,
  ndarrayToNumbers,
  typedToNumbers,
  pyTypeName,
} from './pickle.js';
export type { PickleOptions, PyValue, PyDict, PyKey, PyInstance, PyGlobal, NumericArray, NumpyField } from './pickle.js';
export {
  readSklearnScaler,
  readSklearnTree,
  readSklearnLinear,
  readSklearnModel,
  scalerFromPickled,
  treeFromPickled,
  linearFromPickled,
  treeDepth,
  SCALER_CLASSES,
  TREE_REGRESSOR_CLASSES,
  TREE_CLASS,
  LINEAR_CLASSES,
} from './sklearn.js';
export type { SklearnModel, SklearnTree, SklearnLinear, TreeHyperparameters, LinearHyperparameters } from './sklearn.js';
