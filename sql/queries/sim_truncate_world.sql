-- A fresh simulated world replaces everything the simulator writes (the warehouse and its truth).
TRUNCATE warehouse.events, warehouse.articles, warehouse.users, warehouse.publications,
         sim.config, sim.publications, sim.articles, sim.users, sim.user_taste,
         sim.user_publication_affinity, sim.region_category_bias, sim.impression_truth, sim.days
