/** The dense matrix shape lives with the data stage (features build it, models take it); re-exported for the models stage. */
export * from '../data/matrix.js';
