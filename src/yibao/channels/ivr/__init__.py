"""The telephone line's platform adapters: TwiML webhooks, VoiceXML documents
and the recorded prompts they may play. The dialog itself is services/inquiry/dialog.py."""

from fastapi import APIRouter

from yibao.channels.ivr import common, twiml, vxml

router = APIRouter(prefix="/ivr", include_in_schema=False)
router.include_router(twiml.router)
router.include_router(vxml.router)
router.include_router(common.router)
