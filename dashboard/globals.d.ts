// uPlot is loaded by its own <script> tag (assets/uplot.js) and used as a global.
declare const uPlot: typeof import('uplot');
