from __future__ import annotations

from fastapi import APIRouter, Response

from orchestrator.api.deps import ProfilesDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.domain.profiles import Profile
from orchestrator.models import ProfileModel

router = APIRouter(prefix="/api/profiles", tags=["profiles"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[ProfileModel])
def list_profiles(profiles: ProfilesDep) -> list[ProfileModel]:
    return [ProfileModel.model_validate(p) for p in profiles.all()]


@router.get("/{name}", response_model=ProfileModel)
def get_profile(name: str, profiles: ProfilesDep) -> ProfileModel:
    return ProfileModel.model_validate(profiles.get(name))


@router.put("/{name}", response_model=ProfileModel, responses={201: {"model": ProfileModel}})
def set_profile(name: str, body: Profile, profiles: ProfilesDep, response: Response) -> ProfileModel:
    """Creates the profile (201) or replaces the one of that name (200)."""
    row, created = profiles.set(name, body)
    response.status_code = 201 if created else 200
    return ProfileModel.model_validate(row)


@router.delete("/{name}", status_code=204, response_class=Response)
def delete_profile(name: str, profiles: ProfilesDep) -> Response:
    profiles.delete(name)
    return Response(status_code=204)
