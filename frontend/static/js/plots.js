// One configuration for every Plotly chart: no logo, resizes with the page, and downloads as PNG (Plotly's
// camera button, at twice the screen's resolution) and as SVG (an added button), named after the chart.

export function plotConfig(filename, extra = {}) {
  return {
    displaylogo: false,
    responsive: true,
    toImageButtonOptions: { format: "png", filename, scale: 2 },
    modeBarButtonsToAdd: [{
      name: "download-svg",
      title: "Download plot as SVG",
      icon: window.Plotly.Icons.disk,
      click: (gd) => window.Plotly.downloadImage(gd, { format: "svg", filename }),
    }],
    ...extra,
  };
}
