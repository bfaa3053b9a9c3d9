-- Articles published in a candidate window [start, end): the denominator of coverage.
SELECT count(*) FROM warehouse.articles WHERE published_at >= %s AND published_at < %s
