"""Request and response bodies of the HTTP API (pydantic), as the OpenAPI schema shows them.

Ids are integers and lists are best first. Types are declared here; ranges and
names (``n`` in 1..500, a known algorithm...) are checked by the engine, so a
bad value gets the package's own message.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: A what-if or new user's list: anime id (a JSON object key, so text) -> rating or null.
Liked = dict[str, float | None]

LIKED_DOC = ('{"<anime_id>": rating or null, ...}: rating 1..10, -1 = watched, '
             "null = liked (counts as 10)")


class ErrorDetail(BaseModel):
    type: str = Field(description="the package's error type, e.g. UnknownUserError")
    message: str = Field(description="one line, safe to show")


class Progress(BaseModel):
    stage: str
    fraction: float = Field(ge=0, le=1)


class ErrorBody(BaseModel):
    error: ErrorDetail
    progress: Progress | None = Field(None, description="start-up progress (503 only)")


class Health(BaseModel):
    status: str
    users: int
    anime: int
    ratings: int
    index: str = Field(description='"loaded" (from the cache) or "built"')
    revision: str | None = Field(description="the database's data revision")


class RecommendedAnime(BaseModel):
    rank: int
    anime_id: int
    name: str
    english_name: str | None
    score: float = Field(description="higher is better; comparable within one answer only")
    reason: str
    genre: str | None
    type: str | None
    episodes: int | None
    community_rating: float | None
    members: int | None
    url: str = Field(description="the anime's MyAnimeList page")


class Recommendations(BaseModel):
    method: str = Field(description="the algorithm used (differs from the request on fallback)")
    requested: str
    fallback: bool
    weight: float | None = Field(description="the hybrid's collaborative share (hybrid only)")
    unknown_ids: list[int] = Field(description="listed anime ids the catalogue lacks")
    items: list[RecommendedAnime]


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    liked: Liked = Field(description=LIKED_DOC)
    algorithm: str | None = Field(None, description="default: the product's (hybrid)")
    weight: float | None = Field(None, description="hybrid's collaborative share in [0, 1]")
    n: int | None = Field(None, description="how many anime, 1..500")
    k: int | None = Field(None, description="neighbours for user-user, 1..500")
    collaborative: str | None = Field(None, description="the hybrid's collaborative part")
    diversity: float | None = Field(None, description="0 (plain ranking) to 1 (most varied)")


class SearchHit(BaseModel):
    anime_id: int
    name: str
    matched: str = Field(description="the title variant that matched")
    score: float = Field(description="match score, 0-100")


class SearchResults(BaseModel):
    items: list[SearchHit]


class Neighbour(BaseModel):
    user_id: int
    similarity: float
    shared: int = Field(description="anime both users have watched")


class Neighbours(BaseModel):
    exact: bool
    items: list[Neighbour]
    recall: float | None = Field(description="with exact=true: the share of these the ANN "
                                             "index finds too (recall@k)")


class Anime(BaseModel):
    anime_id: int
    name: str
    english_name: str | None
    japanese_name: str | None
    genre: str | None
    type: str | None
    episodes: int | None
    community_rating: float | None
    members: int | None
    synopsis: str | None
    url: str


class SimilarAnime(BaseModel):
    rank: int
    anime_id: int
    name: str
    english_name: str | None
    similarity: float
    genre: str | None
    type: str | None
    members: int | None
    url: str


class SimilarList(BaseModel):
    model: str
    items: list[SimilarAnime]


class NewUserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    liked: Liked = Field(description=LIKED_DOC + "; ratings whole numbers")


class NewUser(BaseModel):
    user_id: int
