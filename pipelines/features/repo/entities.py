"""Feast entities: who and what features describe."""

from feast import Entity, ValueType

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64, description="a reader")
article = Entity(name="article", join_keys=["article_id"], value_type=ValueType.INT64, description="a news article")
category = Entity(
    name="category", join_keys=["category"], value_type=ValueType.STRING, description="an article category"
)

ENTITIES = {"user": user, "article": article, "category": category}
