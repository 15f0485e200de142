/** The Kaggle frame's size, which every part of the generator draws at. */
export const FRAME_WIDTH = 580;
export const FRAME_HEIGHT = 420;
export const W = FRAME_WIDTH;
export const H = FRAME_HEIGHT;
export const PIXELS = W * H;
