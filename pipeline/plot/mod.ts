/** SVG charts: line charts for loss curves, grouped bar charts for mAP comparisons. */
export { type LineChartOptions, lineChartSvg, type LineSeries } from "./line_chart.ts";
export { type BarChartOptions, barChartSvg, type BarSeries } from "./bar_chart.ts";
export { escapeXml, niceTicks } from "./svg.ts";
