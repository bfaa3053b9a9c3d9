-- Before the simulator writes day D again: the day's truth, its articles (ids in the day's block
-- [first_article, end_article)) and its record. The events partition is truncated separately.
DELETE FROM sim.impression_truth WHERE day = %(day)s;
DELETE FROM warehouse.articles WHERE article_id >= %(first_article)s AND article_id < %(end_article)s;
DELETE FROM sim.articles WHERE article_id >= %(first_article)s AND article_id < %(end_article)s;
DELETE FROM sim.days WHERE day = %(day)s;
