# Write lme4's InstEval data (73,421 ratings) as CSV for benchmarks/crossed.py.
#
# Usage: Rscript --vanilla benchmarks/insteval.R OUT.csv
# Columns: y (the rating, 1-5), service (0/1), s, d, dept (factor labels as in lme4).
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript insteval.R OUT.csv")
data("InstEval", package = "lme4")
out <- data.frame(
  y = as.numeric(InstEval$y),
  service = as.numeric(InstEval$service == "1"),
  s = as.character(InstEval$s),
  d = as.character(InstEval$d),
  dept = as.character(InstEval$dept)
)
write.csv(out, args[1], row.names = FALSE)
